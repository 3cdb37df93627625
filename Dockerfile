# Production image of the `orderly` binary; every service in docker-compose.yml runs it with a
# different subcommand.
FROM swift:6.3-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka-dev libmongoc-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product orderly --static-swift-stdlib

FROM debian:bookworm-slim
# Real Apache Kafka speaks to Debian's librdkafka; only the local Tansu stand-in needs a newer one.
RUN apt-get update && apt-get install -y --no-install-recommends librdkafka1 libmongoc-1.0-0 libbson-1.0-0 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 orderly
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
