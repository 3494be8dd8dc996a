# veeam-failover-exporter. Build: docker build -t veeam-failover-exporter .
# Two stages: wheels are built with the full toolchain, the final image only installs them.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# the same package the tests install, with its pinned-range dependencies, and nothing else
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin exporter \
    && mkdir -p /var/lib/veeam-failover-exporter && chown 65532:65532 /var/lib/veeam-failover-exporter
USER 65532:65532
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 9849
# Kubernetes probes /healthz and /readyz; no HEALTHCHECK here.
ENTRYPOINT ["veeam-failover-exporter"]
CMD ["run", "--config", "/etc/veeam-failover-exporter/config.yaml"]
