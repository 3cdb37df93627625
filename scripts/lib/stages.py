#!/usr/bin/env python3
"""Where an order's time goes: the per-stage histograms of a run, from two scrapes of every process.

    stages.py BEFORE_DIR AFTER_DIR

Each directory holds one Prometheus text scrape per process (any file name). For every histogram
`orderly_relay_{read,published}_after_append_seconds`, `orderly_consumer_{received,handled}_after_append_seconds`, `orderly_consumer_batch_handling_seconds` (per batch, with `orderly_consumer_batch_events_total`)
(per group), `orderly_projection_handled_after_append_seconds` (per read model, as "projection:<name>", with the
documents it wrote: `orderly_projection_documents_written_total`) and
`orderly_document_server_call_seconds` (per process: the scrape file's name), the run's share is AFTER - BEFORE; printed as events, mean, and p50/p99 estimated from
the buckets (linear within a bucket), one line each, tab-separated.
"""
import os
import re
import sys

WANTED = re.compile(r'^(orderly_relay_(read|published)_after_append_seconds|orderly_(?:consumer|projection)_(received|handled)_after_append_seconds|orderly_consumer_batch_handling_seconds|orderly_document_server_call_seconds)_(bucket|sum|count)(\{[^}]*\})? ([0-9.eE+-]+|\+Inf|NaN)$')
BATCH_EVENTS = re.compile(r'^orderly_consumer_batch_events_total\{[^}]*group="([^"]*)"[^}]*\} ([0-9.eE+-]+)$')
DOCUMENTS = re.compile(r'^orderly_projection_documents_written_total\{[^}]*projection="([^"]*)"[^}]*\} ([0-9.eE+-]+)$')


def scrape(directory):
    series = {}
    for name in sorted(os.listdir(directory)):
        for line in open(os.path.join(directory, name)):
            events = BATCH_EVENTS.match(line.strip())
            if events:
                series.setdefault(("batch events", events.group(1)), {"count": 0.0})["count"] += float(events.group(2))
                continue
            documents = DOCUMENTS.match(line.strip())
            if documents:
                series.setdefault(("documents", f"projection:{documents.group(1)}"), {"count": 0.0})["count"] += float(documents.group(2))
                continue
            match = WANTED.match(line.strip())
            if not match:
                continue
            metric, _, _, part, labels, value = match.groups()
            labels = labels or ""
            group = re.search(r'group="([^"]*)"', labels)
            projection = re.search(r'projection="([^"]*)"', labels)
            if metric == "orderly_document_server_call_seconds":
                key = (metric, f"document server calls ({os.path.splitext(name)[0]})")
            else:
                key = (metric, group.group(1) if group else f"projection:{projection.group(1)}" if projection else "")
            entry = series.setdefault(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
            if part == "bucket":
                bound = re.search(r'le="([^"]*)"', labels).group(1)
                entry["buckets"][float("inf") if bound == "+Inf" else float(bound)] = float(value)
            else:
                entry[part] = float(value)
    return series


def quantile(buckets, count, q):
    rank, lower, below = q * count, 0.0, 0.0
    for bound in sorted(buckets):
        cumulative = buckets[bound]
        if cumulative >= rank and cumulative > below:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


def main():
    before, after = scrape(sys.argv[1]), scrape(sys.argv[2])
    stage = {
        "orderly_relay_read_after_append_seconds": "relay read",
        "orderly_relay_published_after_append_seconds": "relay acknowledged",
        "orderly_consumer_received_after_append_seconds": "received",
        "orderly_consumer_handled_after_append_seconds": "handled",
        "orderly_projection_handled_after_append_seconds": "handled",
        "orderly_consumer_batch_handling_seconds": "batch handling",
        "orderly_document_server_call_seconds": "per call",
    }
    for key in sorted((k for k in after if k[0] in stage), key=lambda k: (k[1], list(stage).index(k[0]))):
        now, then = after[key], before.get(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
        count = now["count"] - then["count"]
        if count <= 0:
            continue
        buckets = {bound: value - then["buckets"].get(bound, 0.0) for bound, value in now["buckets"].items()}
        mean = (now["sum"] - then["sum"]) / count * 1000
        p50, p99 = (quantile(buckets, count, q) * 1000 for q in (0.5, 0.99))
        name = stage[key[0]]
        if name == "per call":
            name = f"per call ({int(count)} calls)"
        elif name == "batch handling":
            # Per batch, not per event: how many batches, and the events in each on average.
            events = after.get(("batch events", key[1]), {"count": 0.0})["count"] - before.get(("batch events", key[1]), {"count": 0.0})["count"]
            name = f"batch handling ({int(count)} batches, {events / count:.0f} events each)"
        elif key[0] == "orderly_projection_handled_after_append_seconds":
            # What those events cost the document server: the documents written for them.
            written = after.get(("documents", key[1]), {"count": 0.0})["count"] - before.get(("documents", key[1]), {"count": 0.0})["count"]
            name = f"handled, {int(written)} documents written"
        print(f"{key[1] or 'relay'}\t{name}\t{int(count)}\t{mean:.1f}\t{p50:.1f}\t{p99:.1f}")


main()
