"""Checks the spans scripts/trace-test collected for one order placed with a sampled traceparent,
one without, and one with an unsampled traceparent (no span of its may arrive). Usage: trace_check.py SPANS.jsonl FACTS.json (facts: the trace and parent span the client
sent, the traceresponse headers the api answered, the secrets that must appear nowhere)."""
import json
import sys

spans = [json.loads(line) for line in open(sys.argv[1])]
facts = json.load(open(sys.argv[2]))
problems = []
PRODUCER, CONSUMER, SERVER, CLIENT = 4, 5, 2, 3
SAGA = {"orderly-api", "orderly-relay", "orderly-inventory", "orderly-payment", "orderly-order", "orderly-notification", "orderly-projector"}


def check_trace(trace_id, client_parent, label):
    trace = [span for span in spans if span["trace_id"] == trace_id]
    by_id = {span["span_id"]: span for span in trace}
    services = {span["service"] for span in trace}
    if not SAGA <= services:
        problems.append(f"{label}: no spans from {sorted(SAGA - services)} in trace {trace_id} (got {sorted(services)})")
    roots = [span for span in trace if span["parent_span_id"] not in by_id]
    expected_parent = client_parent or ""
    if len(roots) != 1 or roots[0]["parent_span_id"] != expected_parent or roots[0]["service"] != "orderly-api" or roots[0]["kind"] != SERVER:
        problems.append(f"{label}: the trace must have one root, the api's server span under {expected_parent or 'nothing'}; roots: "
                        + str([(r["service"], r["name"], r["parent_span_id"]) for r in roots]))
    for span in trace:
        parent = by_id.get(span["parent_span_id"])
        if span["kind"] == CONSUMER and (parent is None or parent["kind"] != PRODUCER or parent["service"] != "orderly-relay"):
            problems.append(f"{label}: consumer span {span['service']}/{span['name']} is not a child of a relay publish span")
        if span["kind"] == PRODUCER and (parent is None or parent["service"] == "orderly-relay"):
            problems.append(f"{label}: publish span {span['name']} is not a child of the span that appended its event")
    # Each saga step: a service's handling span leads, through what it appended and the relay, to the next.
    types = {(span["service"], span["attributes"].get("orderly.event.type")) for span in trace if span["kind"] == CONSUMER}
    for step in [("orderly-inventory", "OrderPlaced"), ("orderly-payment", "StockReserved"), ("orderly-order", "PaymentProcessed"),
                 ("orderly-notification", "OrderCompleted"), ("orderly-projector", "OrderCompleted")]:
        if step not in types:
            problems.append(f"{label}: no consumer span of {step[0]} handling {step[1]}")
    # A batch call (the projector's bulk write of several orders' events) is spanned in the first
    # sampled order's trace and linked from there to the others'.
    linked = [span for span in spans if span["kind"] == CLIENT and any(link["trace_id"] == trace_id for link in span.get("links", []))]
    databases = {(span["service"], span["attributes"].get("db.system.name")) for span in trace + linked if span["kind"] == CLIENT}
    for needed in [("orderly-api", "postgresql"), ("orderly-inventory", "postgresql"), ("orderly-projector", "mongodb")]:
        if needed not in databases:
            problems.append(f"{label}: no {needed[1]} client span from {needed[0]}")
    for span in trace:
        if span["kind"] == CLIENT and any(key.startswith("db.query") or key == "db.statement" for key in span["attributes"]):
            problems.append(f"{label}: a database span carries its statement: {span['attributes']}")
    return trace


first = check_trace(facts["trace_id"], facts["client_parent"], "order with traceparent")
if not facts["traceresponse"].startswith(f"00-{facts['trace_id']}-"):
    problems.append(f"traceresponse {facts['traceresponse']!r} does not name the trace {facts['trace_id']}")
fresh = facts["fresh_traceresponse"].split("-")
if len(fresh) != 4 or fresh[1] == facts["trace_id"]:
    problems.append(f"an order without traceparent got no new trace: traceresponse {facts['fresh_traceresponse']!r}")
else:
    check_trace(fresh[1], None, "order without traceparent")
unsampled = [span for span in spans if span["trace_id"] == facts["unsampled_trace_id"]]
if unsampled:
    problems.append(f"the order whose caller did not sample its trace exported {len(unsampled)} spans: "
                    + str(sorted({(s["service"], s["name"]) for s in unsampled})))
text = json.dumps(spans)
for secret in facts["secrets"]:
    if secret and secret in text:
        problems.append(f"a secret ({secret[:6]}…) appears in a span")
if problems:
    print("trace check failed:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"traces: {len(first)} spans from {len({s['service'] for s in first})} processes in one trace per order, "
      f"parents as they should be, no secret in {len(spans)} spans")
