# labctl: `make lab` brings up the sandbox lab, `make test` runs every test. Both install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PYTHON    ?= python3
# Empty: labctl's own defaults ($LABCTL_INVENTORY / $LABCTL_PLAYBOOK, then fabric.yaml's labctl: section, then
# inventories/sandbox.yaml and playbooks/seed-overlay.yaml), the same as a bare `fab up` or `labctl up`.
INVENTORY ?=
PLAYBOOK  ?=
INV_ARG   = $(if $(INVENTORY),--inventory $(INVENTORY))
PB_ARG    = $(if $(PLAYBOOK),--playbook $(PLAYBOOK))
LABCTL    := $(VENV)/bin/labctl
PYTEST_ARGS ?=

# Debian/Ubuntu packages the sandbox hosts and the tests use (binaries run inside each sandbox host).
APT_PACKAGES := docker.io etcd-server etcd-client openssh-server openssh-client iproute2 iptables \
                busybox-static tcpdump util-linux procps python3-venv fping graphviz chromium poppler-utils \
                sudo openssl
# Only for tests of the Vagrant path (`vagrant validate`, `vagrant ssh-config`): if they cannot be installed, those
# tests skip and say why; no VM is started.
APT_OPTIONAL := vagrant vagrant-libvirt

.PHONY: help deps apt venv lab verify down test unit integration lint bench bench-class clean vms-e2e

help:
	@echo "make lab    install what is missing, bring up the sandbox hosts, then the lab (INVENTORY=, PLAYBOOK= to choose)"
	@echo "make test   install what is missing, then run the whole test suite (unit + integration, needs root)"
	@echo "make verify probe who reaches whom in the lab and compare with the playbook"
	@echo "make down   remove the lab, then the sandbox hosts"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks on sandbox hosts: up, verify, down vs the tutorials' way and the floor; a class of 30"
	@echo "make vms-e2e  the lab on three real VMs (Vagrant + libvirt, QEMU): box, boot, provision, up, verify, down"

deps: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then echo "missing packages: $$missing (run as root, or apt-get install them)"; exit 2; fi; \
	    echo "installing: $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@missing=$$(for p in $(APT_OPTIONAL); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	    echo "installing (optional): $$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	     apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	        || echo "could not install $$missing: the Vagrant tests will skip"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $@

lab: deps
	$(LABCTL) sandbox up $(INV_ARG)
	$(LABCTL) up $(INV_ARG) $(PB_ARG)
	$(LABCTL) verify $(INV_ARG) $(PB_ARG)

verify: venv
	$(LABCTL) verify $(INV_ARG) $(PB_ARG)

down: venv
	-$(LABCTL) down $(INV_ARG) $(PB_ARG)
	$(LABCTL) sandbox down $(INV_ARG)

test: deps
	$(VENV)/bin/python -m pytest -ra $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/python -m pytest -ra tests/unit

integration: deps
	$(VENV)/bin/python -m pytest -ra tests/integration

lint: venv
	$(VENV)/bin/ruff check labctl tests fabfile.py bench
	$(VENV)/bin/mypy labctl

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

# Benchmarks on sandbox hosts (root): prints a table, writes docs/benchmarks.md and bench/results.json; then a
# class of 30 student labs (bench/classroom.py: docs/benchmarks-class.md, bench/results-class.json).
# BENCH_ARGS, e.g. BENCH_ARGS="--sizes 2x1,8x5", chooses sizes; default 2,4,8 hosts x 1,5,20 containers per host.
# `make bench-class` runs only the class.
BENCH_ARGS ?=
bench: deps
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/classroom.py

bench-class: deps
	$(VENV)/bin/python bench/classroom.py

# The lab on three booted VMs (root; not part of `make test`): builds the Debian 12 box (cached), starts libvirt,
# vagrant up --provider=libvirt, fab provision/up/verify/down, vagrant destroy -f; times per step, logs and
# verify-junit.xml in vms-e2e/. See vms/e2e.sh. PLAYBOOK=playbooks/seed-overlay-consul.yaml: the Consul lab (Debian 11's
# docker.io and consul, installed by provisioning from Debian's archive).
vms-e2e:
	PLAYBOOK=$(PLAYBOOK) vms/e2e.sh
