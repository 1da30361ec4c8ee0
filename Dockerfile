ARG ARCH="amd64"
ARG OS="linux"
FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest
LABEL maintainer="The wsgi_exporter authors"
LABEL org.opencontainers.image.source="https://github.com/wsgi-exporter/wsgi_exporter"

ARG ARCH="amd64"
ARG OS="linux"
COPY .build/${OS}-${ARCH}/wsgi_exporter /bin/wsgi_exporter

EXPOSE 10133
USER nobody
ENTRYPOINT ["/bin/wsgi_exporter"]
