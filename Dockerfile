# syntax=docker/dockerfile:1
# The one Aura image: `aura operator` and `aura bridge` (and every other `aura` subcommand).
#
#   docker build -t ghcr.io/aura-dev/aura:0.1.0 .
#   docker run --rm ghcr.io/aura-dev/aura:0.1.0 --help
#
# Two stages: the builder installs Aura and its dependencies (ansible-core and ansible-runner
# among them) into a virtualenv; the runtime stage copies only that virtualenv, the playbook
# and the ssh client onto a slim Python, and runs as an unprivileged numeric user so
# Kubernetes can verify `runAsNonRoot`. tests/cluster/test_image.py builds it and checks these facts.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/aura/venv
ENV PATH=/opt/aura/venv/bin:$PATH

# Dependencies first, from pyproject.toml alone, so a code change reuses this layer. Every
# dependency ships binary wheels for CPython 3.11 on amd64 and arm64: no compiler needed.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt

# Then Aura itself, as a regular (non-editable) install without re-resolving dependencies.
COPY README.md ./
COPY operator/ operator/
RUN pip install --no-deps . \
 && aura --version

# Ansible collections the playbook declares, if any (ansible-core only has ansible.builtin).
COPY ansible/ /opt/aura/ansible/
RUN if [ -f /opt/aura/ansible/requirements.yml ]; then \
      ansible-galaxy collection install --requirements-file /opt/aura/ansible/requirements.yml \
        --collections-path /opt/aura/collections; \
    else mkdir -p /opt/aura/collections; fi

# --- runtime -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# openssh-client: Ansible reaches the agent hosts over SSH (ssh, ssh-agent, ssh-add).
# Not pinned: Debian replaces a stable release's package versions with each security update,
# so a pin would break the build rather than make it reproducible (pin the base image instead).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid (the manifests use the same) with a home for ~/.ansible and ~/.ssh.
RUN groupadd --system --gid 10001 aura \
 && useradd --system --uid 10001 --gid aura --home-dir /home/aura --create-home \
      --shell /usr/sbin/nologin aura

COPY --from=builder /opt/aura/venv /opt/aura/venv
COPY --from=builder /opt/aura/collections /opt/aura/collections
COPY ansible/ /opt/aura/ansible/

ENV PATH=/opt/aura/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AURA_ANSIBLE_DIR=/opt/aura/ansible \
    ANSIBLE_COLLECTIONS_PATH=/opt/aura/collections

USER 10001:10001
WORKDIR /home/aura
# 8080: kopf liveness (operator) or the bridge's HTTP; 9090: operator metrics.
EXPOSE 8080 9090
ENTRYPOINT ["aura"]
CMD ["--help"]
