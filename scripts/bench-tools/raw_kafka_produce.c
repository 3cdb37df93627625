/* The raw librdkafka baseline for the relay benchmark: produces N keyed messages of the relay's
 * shape (value of SIZE bytes, the same eight headers) with the same producer settings as the relay
 * (idempotent, acks=all, linger.ms=5), and waits for every delivery report. Prints messages/s.
 *
 *   raw_kafka_produce BROKERS TOPIC COUNT SIZE
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long delivered = 0, failed = 0;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
    (void)rk; (void)opaque;
    if (message->err) failed++; else delivered++;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s BROKERS TOPIC COUNT SIZE\n", argv[0]); return 2; }
    long count = atol(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    char error[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {
        {"bootstrap.servers", argv[1]}, {"enable.idempotence", "true"}, {"acks", "all"},
        {"linger.ms", "5"}, {"partitioner", "murmur2_random"}, {"message.timeout.ms", "30000"}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], error, sizeof error) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "%s\n", error); return 1;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!rk) { fprintf(stderr, "%s\n", error); return 1; }
    char *value = malloc(size);
    memset(value, 'x', size);
    char key[64], position[32];
    const char *id = "6c3e1f0a-8d2b-4f4e-9a1c-5b7d2e9f0a11";
    double start = now();
    for (long i = 0; i < count; i++) {
        snprintf(key, sizeof key, "order-%ld", i % 5000);
        snprintf(position, sizeof position, "%ld", i + 1);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, size),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("event-id", id, -1),
                RD_KAFKA_V_HEADER("event-type", "OrderPlaced", -1), RD_KAFKA_V_HEADER("schema-version", "1", -1),
                RD_KAFKA_V_HEADER("stream-id", key, -1), RD_KAFKA_V_HEADER("stream-version", "1", -1),
                RD_KAFKA_V_HEADER("position", position, -1), RD_KAFKA_V_HEADER("transaction-id", position, -1),
                RD_KAFKA_V_HEADER("recorded-at", "1795400000.123", -1), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) { fprintf(stderr, "%s\n", rd_kafka_err2str(err)); return 1; }
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 60000);
    double seconds = now() - start;
    printf("{\"messages\": %ld, \"failed\": %ld, \"seconds\": %.3f, \"messagesPerSecond\": %.1f}\n", delivered, failed, seconds,
           delivered / seconds);
    rd_kafka_destroy(rk);
    free(value);
    return failed ? 1 : 0;
}
