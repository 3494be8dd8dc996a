# veeam-failover-exporter. Build with scripts/build-image (it builds the wheels on the host first, then
# runs `docker build` or `podman build`); push, and pin the image by digest (docs/kubernetes.md).
#
# BASE: any Debian-like image with Python 3.11 and its venv module. Default: the official slim image.
# CI builds from a Debian 12 base it makes itself with debootstrap (tests/e2e/test_image.py).
ARG BASE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE}
# build/wheels: this package and its pinned-range dependencies, built on the host by scripts/build-image,
# installed offline: no compiler, no network and no proxy certificate needed inside the build
COPY build/wheels /wheels
RUN python3 -m venv /opt/veeam-failover-exporter \
    && /opt/veeam-failover-exporter/bin/pip install --no-index --no-cache-dir --no-compile /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin exporter \
    && mkdir -p /var/lib/veeam-failover-exporter && chown 65532:65532 /var/lib/veeam-failover-exporter
USER 65532:65532
ENV PATH=/opt/veeam-failover-exporter/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 9849
# Kubernetes probes /healthz and /readyz; no HEALTHCHECK here.
ENTRYPOINT ["veeam-failover-exporter"]
CMD ["run", "--config", "/etc/veeam-failover-exporter/config.yaml"]
