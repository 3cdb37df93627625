# Production image of the `orderly` binary; every service in docker-compose.yml runs it with a
# different subcommand.
FROM swift:6.3-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka-dev libmongoc-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Plugins ./Plugins
COPY scripts/build-info.sh ./scripts/build-info.sh
COPY Sources ./Sources
COPY Tests ./Tests
# The build context has no .git: `orderly --version` gets the commit from here
# (docker compose build --build-arg ORDERLY_BUILD_COMMIT=$(git rev-parse --short=12 HEAD)).
ARG ORDERLY_BUILD_COMMIT=unknown
RUN ORDERLY_BUILD_COMMIT=$ORDERLY_BUILD_COMMIT swift build -c release --product orderly --static-swift-stdlib

# The librdkafka the tests run against: scripts/install takes it from the confluent-kafka wheel, and
# so does the image (scripts/check-compose.py keeps the two pins equal). Debian's 2.0.2 is older
# than anything tested.
FROM debian:bookworm-slim AS librdkafka
ARG CONFLUENT_KAFKA_VERSION=2.16.1
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m pip download --no-deps --only-binary=:all: -d /wheel "confluent-kafka==$CONFLUENT_KAFKA_VERSION" \
    && python3 -m zipfile -e /wheel/confluent_kafka-*.whl /unpacked \
    && mkdir -p /opt/librdkafka && cp /unpacked/confluent_kafka.libs/* /opt/librdkafka/ \
    && ln -s "$(basename /opt/librdkafka/librdkafka-*.so.1)" /opt/librdkafka/librdkafka.so.1

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libmongoc-1.0-0 libbson-1.0-0 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 orderly
COPY --from=librdkafka /opt/librdkafka /usr/local/lib/orderly-librdkafka
ENV LD_LIBRARY_PATH=/usr/local/lib/orderly-librdkafka
# libmongoc's shared-memory counters are only for its mongoc-stat tool: off (no /dev/shm segments).
ENV MONGOC_DISABLE_SHM=1
COPY --from=build /src/.build/release/orderly /usr/local/bin/orderly
# The api serves its OpenAPI document and the console from this resource bundle beside the binary.
COPY --from=build /src/.build/release/Orderly_OrderlyAPI.resources /usr/local/bin/Orderly_OrderlyAPI.resources
COPY migrations /usr/local/share/orderly/migrations
ENV ORDERLY_MIGRATIONS_DIR=/usr/local/share/orderly/migrations
COPY projections /usr/local/share/orderly/projections
ENV ORDERLY_PROJECTIONS_DIR=/usr/local/share/orderly/projections
USER orderly
ENTRYPOINT ["/usr/local/bin/orderly"]
CMD ["dev"]
