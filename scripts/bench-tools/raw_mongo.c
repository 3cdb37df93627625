/* The raw libmongoc baseline for the read-model benchmark: what the document server manages with a
 * plain C client and nothing of ours in the way, so the projector's and the query API's figures can be
 * quoted as ratios against it on the same server.
 *
 * upsert: reads one read-model document (JSON, without _id) from DOCFILE and upserts COUNT copies with
 *   _id "raw-0", "raw-1", ... as replace-one upserts ({_id: ID} -> the document with that _id) in
 *   unordered bulks of BATCH, one bulk at a time (like the projector), with the URI's write concern.
 *   Drops nothing. Times the first to the last bulk, then reads the last _id back as a check.
 * read: THREADS threads share one client pool; each holds a client for the whole run and, for SECONDS,
 *   does point reads find({_id: ID}, limit 1) of ids drawn at random from IDFILE (one _id a line).
 *   A read counts only when a document came back; the rest are counted as misses.
 *
 * Prints one JSON line on stdout; on any error it says why on stderr and exits 1 (2 for bad usage).
 *
 *   raw_mongo upsert URI DB COLLECTION COUNT DOCFILE BATCH
 *   raw_mongo read URI DB COLLECTION IDFILE THREADS SECONDS
 */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* libmongoc's own log, less its chatter: the pool's monitor logs every failed connection at DEBUG. */
static void log_warnings(mongoc_log_level_t level, const char *domain, const char *message, void *data) {
    if (level <= MONGOC_LOG_LEVEL_WARNING) mongoc_log_default_handler(level, domain, message, data);
}

static void usage(const char *program) {
    fprintf(stderr,
            "usage: %s upsert URI DB COLLECTION COUNT DOCFILE BATCH\n"
            "       %s read URI DB COLLECTION IDFILE THREADS SECONDS\n",
            program, program);
}

/* A positive whole number from the command line, or -1. */
static long positive(const char *text) {
    char *end;
    long value = strtol(text, &end, 10);
    return (*text && !*end && value > 0) ? value : -1;
}

/* The whole file, NUL-terminated; NULL (after saying why) when it cannot be read. */
static char *read_file(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (!file) { perror(path); return NULL; }
    size_t size = 0, capacity = 65536;
    char *data = malloc(capacity);
    for (;;) {
        if (capacity - size < 2) data = realloc(data, capacity *= 2);
        size_t got = fread(data + size, 1, capacity - size - 1, file);
        size += got;
        if (got == 0) break;
    }
    int failed = ferror(file);
    fclose(file);
    if (failed) { fprintf(stderr, "%s: read error\n", path); free(data); return NULL; }
    data[size] = '\0';
    *length = size;
    return data;
}

static mongoc_uri_t *parse_uri(const char *text) {
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, &error);
    if (!uri) fprintf(stderr, "bad URI %s: %s\n", text, error.message);
    return uri;
}

/* Fails fast (and keeps the handshake out of the timing) when the server cannot be reached. */
static int ping(mongoc_client_t *client) {
    bson_error_t error;
    bson_t *command = BCON_NEW("ping", BCON_INT32(1));
    bool ok = mongoc_client_command_simple(client, "admin", command, NULL, NULL, &error);
    bson_destroy(command);
    if (!ok) fprintf(stderr, "cannot reach the server: %s\n", error.message);
    return ok ? 0 : -1;
}

static int32_t reply_int(const bson_t *reply, const char *key) {
    bson_iter_t iter;
    return bson_iter_init_find(&iter, reply, key) && BSON_ITER_HOLDS_NUMBER(&iter) ? (int32_t)bson_iter_as_int64(&iter) : 0;
}

/* Whether the document with _id ID can be read back: catches a server that reports upserts but
 * stores them under other ids. */
static bool stored(mongoc_collection_t *collection, const char *id) {
    bson_error_t error;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(collection, filter, opts, NULL);
    const bson_t *document;
    bool found = mongoc_cursor_next(cursor, &document);
    if (mongoc_cursor_error(cursor, &error)) {
        fprintf(stderr, "cannot read back {_id: \"%s\"}: %s\n", id, error.message);
        found = false;
    } else if (!found) {
        fprintf(stderr, "{_id: \"%s\"} was upserted but cannot be found\n", id);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    return found;
}

static int upsert(const char *uri_text, const char *db, const char *name, long count, const char *docfile, long batch) {
    size_t length;
    char *json = read_file(docfile, &length);
    if (!json) return 1;
    bson_error_t error;
    bson_t *parsed = bson_new_from_json((const uint8_t *)json, (ssize_t)length, &error);
    free(json);
    if (!parsed) { fprintf(stderr, "%s: not a JSON document: %s\n", docfile, error.message); return 1; }
    /* Each replacement carries its own _id, the selector's: NX-27017 does not take the _id of an
     * upserted replacement from the selector as MongoDB does, but gives it a new ObjectId. */
    bson_t document = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(parsed, &document, "_id", NULL);
    bson_destroy(parsed);

    int status = 1;
    mongoc_uri_t *uri = parse_uri(uri_text);
    mongoc_client_t *client = NULL;
    mongoc_collection_t *collection = NULL;
    bson_t *bulk_opts = BCON_NEW("ordered", BCON_BOOL(false));
    bson_t *upsert_opts = BCON_NEW("upsert", BCON_BOOL(true));
    if (!uri) goto done;
    client = mongoc_client_new_from_uri_with_error(uri, &error);
    if (!client) { fprintf(stderr, "cannot create a client: %s\n", error.message); goto done; }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(client, "raw_mongo");
    if (ping(client) != 0) goto done;
    collection = mongoc_client_get_collection(client, db, name);

    char id[48];
    long written = 0;
    double start = now();
    for (long first = 0; first < count; first += batch) {
        long last = first + batch < count ? first + batch : count;
        mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(collection, bulk_opts);
        for (long i = first; i < last; i++) {
            snprintf(id, sizeof id, "raw-%ld", i);
            bson_t selector = BSON_INITIALIZER, replacement = BSON_INITIALIZER;
            BSON_APPEND_UTF8(&selector, "_id", id);
            BSON_APPEND_UTF8(&replacement, "_id", id);
            bson_concat(&replacement, &document);
            bool added = mongoc_bulk_operation_replace_one_with_opts(bulk, &selector, &replacement, upsert_opts, &error);
            bson_destroy(&replacement);
            bson_destroy(&selector);
            if (!added) {
                fprintf(stderr, "cannot add to the bulk: %s\n", error.message);
                mongoc_bulk_operation_destroy(bulk);
                goto done;
            }
        }
        bson_t reply;
        uint32_t ok = mongoc_bulk_operation_execute(bulk, &reply, &error);
        int32_t upserted = reply_int(&reply, "nUpserted"), matched = reply_int(&reply, "nMatched");
        if (!ok) {
            char *text = bson_as_relaxed_extended_json(&reply, NULL);
            fprintf(stderr, "bulk of raw-%ld..raw-%ld failed: %s\nreply: %s\n", first, last - 1, error.message, text);
            bson_free(text);
        } else if (upserted + matched != last - first) {
            char *text = bson_as_relaxed_extended_json(&reply, NULL);
            fprintf(stderr, "bulk of raw-%ld..raw-%ld: %ld replace-one upserts but %d upserted + %d matched\nreply: %s\n",
                    first, last - 1, last - first, upserted, matched, text);
            bson_free(text);
            ok = 0;
        }
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(bulk);
        if (!ok) goto done;
        written += last - first;
    }
    double seconds = now() - start;
    if (!stored(collection, id)) goto done;
    printf("{\"docsPerSecond\": %.1f, \"docs\": %ld, \"seconds\": %.3f}\n", written / seconds, written, seconds);
    status = 0;

done:
    if (collection) mongoc_collection_destroy(collection);
    if (client) mongoc_client_destroy(client);
    if (uri) mongoc_uri_destroy(uri);
    bson_destroy(upsert_opts);
    bson_destroy(bulk_opts);
    bson_destroy(&document);
    return status;
}

static atomic_int failed;

struct reader {
    pthread_t thread;
    mongoc_client_pool_t *pool;
    const char *db, *collection;
    char **ids;
    size_t id_count;
    double deadline;
    uint64_t seed;
    long reads, misses;
};

static void *read_loop(void *argument) {
    struct reader *reader = argument;
    mongoc_client_t *client = mongoc_client_pool_pop(reader->pool);
    mongoc_collection_t *collection = mongoc_client_get_collection(client, reader->db, reader->collection);
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    uint64_t state = reader->seed;
    bson_error_t error;
    while (!atomic_load(&failed) && now() < reader->deadline) {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27; /* xorshift64* */
        const char *id = reader->ids[(state * 2685821657736338717ULL >> 11) % reader->id_count];
        bson_t filter = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&filter, "_id", id);
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(collection, &filter, opts, NULL);
        const bson_t *document;
        bool found = mongoc_cursor_next(cursor, &document);
        bool broken = mongoc_cursor_error(cursor, &error);
        mongoc_cursor_destroy(cursor);
        bson_destroy(&filter);
        if (broken) {
            if (!atomic_exchange(&failed, 1)) fprintf(stderr, "find {_id: \"%s\"} failed: %s\n", id, error.message);
            break;
        }
        if (found) reader->reads++; else reader->misses++;
    }
    bson_destroy(opts);
    mongoc_collection_destroy(collection);
    mongoc_client_pool_push(reader->pool, client);
    return NULL;
}

static int read_ids(const char *uri_text, const char *db, const char *name, const char *idfile, long threads, long seconds) {
    size_t length;
    char *text = read_file(idfile, &length);
    if (!text) return 1;
    size_t capacity = 1024, id_count = 0;
    char **ids = malloc(capacity * sizeof *ids);
    for (char *line = text; line < text + length;) {
        char *end = strchr(line, '\n');
        if (!end) end = text + length;
        *end = '\0';
        if (end > line && end[-1] == '\r') end[-1] = '\0';
        if (*line) {
            if (id_count == capacity) ids = realloc(ids, (capacity *= 2) * sizeof *ids);
            ids[id_count++] = line;
        }
        line = end + 1;
    }

    int status = 1;
    mongoc_client_pool_t *pool = NULL;
    struct reader *readers = NULL;
    mongoc_uri_t *uri = parse_uri(uri_text);
    if (!uri) goto done;
    if (id_count == 0) { fprintf(stderr, "%s: no ids\n", idfile); goto done; }
    bson_error_t error;
    pool = mongoc_client_pool_new_with_error(uri, &error);
    if (!pool) { fprintf(stderr, "cannot create a client pool: %s\n", error.message); goto done; }
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(pool, "raw_mongo");
    if (threads > 100) mongoc_client_pool_max_size(pool, (uint32_t)threads);
    mongoc_client_t *probe = mongoc_client_pool_pop(pool);
    int reachable = ping(probe);
    mongoc_client_pool_push(pool, probe);
    if (reachable != 0) goto done;

    readers = calloc((size_t)threads, sizeof *readers);
    double start = now();
    long started = 0;
    for (; started < threads; started++) {
        struct reader *reader = &readers[started];
        reader->pool = pool;
        reader->db = db;
        reader->collection = name;
        reader->ids = ids;
        reader->id_count = id_count;
        reader->deadline = start + seconds;
        reader->seed = ((uint64_t)started + 1) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)time(NULL);
        if (reader->seed == 0) reader->seed = 1;
        int err = pthread_create(&reader->thread, NULL, read_loop, reader);
        if (err) { fprintf(stderr, "cannot start a thread: %s\n", strerror(err)); atomic_store(&failed, 1); break; }
    }
    long reads = 0, misses = 0;
    for (long i = 0; i < started; i++) {
        pthread_join(readers[i].thread, NULL);
        reads += readers[i].reads;
        misses += readers[i].misses;
    }
    double elapsed = now() - start;
    if (atomic_load(&failed)) goto done;
    printf("{\"readsPerSecond\": %.1f, \"reads\": %ld, \"misses\": %ld, \"seconds\": %.3f}\n", reads / elapsed, reads,
           misses, elapsed);
    status = 0;

done:
    free(readers);
    if (pool) mongoc_client_pool_destroy(pool);
    if (uri) mongoc_uri_destroy(uri);
    free(ids);
    free(text);
    return status;
}

int main(int argc, char **argv) {
    if (argc != 8 || (strcmp(argv[1], "upsert") != 0 && strcmp(argv[1], "read") != 0)) { usage(argv[0]); return 2; }
    int upserting = strcmp(argv[1], "upsert") == 0;
    /* upsert: COUNT is argv[5], BATCH argv[7]; read: THREADS is argv[6], SECONDS argv[7]. */
    long first = positive(argv[upserting ? 5 : 6]), second = positive(argv[7]);
    if (first < 0 || second < 0) {
        fprintf(stderr, "%s must be positive whole numbers\n", upserting ? "COUNT and BATCH" : "THREADS and SECONDS");
        return 2;
    }
    mongoc_init();
    mongoc_log_set_handler(log_warnings, NULL);
    int status = upserting ? upsert(argv[2], argv[3], argv[4], first, argv[6], second)
                           : read_ids(argv[2], argv[3], argv[4], argv[5], first, second);
    mongoc_cleanup();
    return status;
}
