ARG ARCH="amd64"
ARG OS="linux"
FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest
LABEL maintainer="The wsgi_exporter authors"

ARG ARCH="amd64"
ARG OS="linux"
# make docker passes the VERSION file and the git revision the binary was built from.
ARG VERSION=""
ARG REVISION=""
LABEL org.opencontainers.image.source="https://github.com/wsgi-exporter/wsgi_exporter" \
      org.opencontainers.image.title="wsgi_exporter" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY .build/${OS}-${ARCH}/wsgi_exporter /bin/wsgi_exporter

EXPOSE 10133
USER nobody
ENTRYPOINT ["/bin/wsgi_exporter"]
