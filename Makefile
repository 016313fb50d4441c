# The user's entry points. `make help` lists them. Every target installs what it needs
# itself and is safe to run again.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
CACHE       := .cache
JARS        := $(CACHE)/jars
DURATION    ?= 0

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------- set-up

# One line per step, and the tools' own progress on a terminal (quiet in CI and logs):
# the first run downloads for minutes, and a silent minute looks like a hang.
TTY_QUIET = $$([ -t 1 ] || echo --quiet)

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "setup: Python virtualenv in $(VENV)"
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@echo "setup: pip 24.3.1"
	@$(PY) -m pip install $(TTY_QUIET) --upgrade pip==24.3.1
	@echo "setup: the project and its pinned packages (pyspark, chdb, ansible, ...: a few minutes the first time)"
	@$(PY) -m pip install $(TTY_QUIET) -c constraints.txt -e '.[processor,embedded,dev,infra]'
	@touch $@

$(JARS)/%/.resolved: app/runtime/maven/%.pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn (Maven) is not on PATH; install it (apt-get install maven)"; exit 1; }
	@echo "setup: jars of $* from Maven Central into $(JARS)/$*"
	@mvn $(TTY_QUIET) -B -f $< dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(abspath $(JARS))/$*
	@touch $@

.PHONY: setup
setup: $(VENV)/.installed $(JARS)/kafka-broker/.resolved $(JARS)/spark-kafka/.resolved ## Install the virtualenv and resolve the Kafka and Spark jars

# ---------------------------------------------------------------- the pipeline

# The demo turns on a little of every fault so the view has rejects, late rows and
# duplicates to show. Override any of them: make demo FAULT_LATE_RATE=0
demo: export FAULT_MALFORMED_RATE ?= 0.005
demo: export FAULT_NULL_USER_RATE ?= 0.003
demo: export FAULT_NULL_PAGE_RATE ?= 0.002
demo: export FAULT_LATE_RATE ?= 0.01
demo: export FAULT_DUPLICATE_RATE ?= 0.01
# Sessions close 2 minutes after their last event (plus the 2-minute watermark delay),
# not 30, so the view shows closed sessions and bots within minutes; a human's gaps
# between events average about 10 s at the demo's rate, far below 2 minutes.
demo: export SESSION_IDLE_TIMEOUT ?= 2m
demo bench profile: export SPARK_JARS ?= $(abspath $(JARS))/spark-kafka

.PHONY: demo
demo: setup ## Run the whole pipeline on this machine (make demo DURATION=60 stops after 60 s)
	$(PY) -m app.runtime.demo --demo-duration $(DURATION)s

# make bench QUICK=1: every stage, small, in a few minutes (what the test runs).
.PHONY: bench
bench: setup $(JARS)/kafka-tools/.resolved ## Measure producers, the job, sustainable rate, freshness, memory (not a test)
	$(PY) -m app.runtime.bench $(if $(QUICK),--quick)

.PHONY: profile
profile: setup ## Time the job stage by stage on 500,000 events (docs/performance.md; not a test)
	$(PY) -m app.runtime.profile

# ---------------------------------------------------------------- housekeeping

.PHONY: lock
lock: ## Re-pin every transitive Python dependency into constraints.txt
	rm -rf $(CACHE)/lock-venv && $(PYTHON_BOOT) -m venv $(CACHE)/lock-venv
	$(CACHE)/lock-venv/bin/pip install --quiet -e '.[processor,embedded,dev,infra]'
	$(CACHE)/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

.PHONY: clean
clean: ## Remove the local runtime's data (.data); keeps downloads
	rm -rf .data

# ---------------------------------------------------------------- AWS appliance (terraform/)
# One host on EC2: Terraform builds it, Ansible deploys onto it. Every target
# first runs scripts/aws/preflight.py, which names anything missing in one line
# and stops before anything is changed. See terraform/README.md.

TF_DIR          ?= terraform
AWS_INVENTORY   ?= inventories/aws
DEPLOY_PLAYBOOK ?= ansible/playbooks/deploy.yml
SSH_WAIT        ?= 600
TERRAFORM       := terraform -chdir=$(TF_DIR)
AWS_PREFLIGHT   := $(PY) scripts/aws/preflight.py --tf-dir $(TF_DIR) --playbook $(DEPLOY_PLAYBOOK) --inventory-dir $(AWS_INVENTORY)
# ansible/ansible.cfg finds the roles; it is only read from the current folder or here.
ANSIBLE_DEPLOY  := ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg ansible-playbook -i $(AWS_INVENTORY) $(DEPLOY_PLAYBOOK)

# checkov pins its own dependencies (and ships its own fork of the HCL parser),
# so it lives in a virtualenv of its own, pinned by terraform/checkov-constraints.txt.
CHECKOV_VENV    := .venv-checkov
CHECKOV_VERSION := 3.3.30
# What the infra tests need beyond $(VENV); `test` depends on it.
INFRA_DEPS      += $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: terraform/checkov-constraints.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -c terraform/checkov-constraints.txt checkov==$(CHECKOV_VERSION)
	@touch $@

.PHONY: checkov
checkov: $(CHECKOV_VENV)/.installed ## Scan terraform/ with checkov (must report 0 failed checks)
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --directory $(TF_DIR) --framework terraform --compact --quiet

.PHONY: plan
plan: $(VENV)/.installed ## Show what Terraform would build or change on AWS
	@$(AWS_PREFLIGHT) plan
	$(TERRAFORM) init -input=false
	$(TERRAFORM) plan -input=false

# Terraform asks before it applies; AUTO_APPROVE=1 skips the question.
.PHONY: provision
provision: $(VENV)/.installed ## Build the network and host on AWS, wait for SSH, then deploy with Ansible
	@$(AWS_PREFLIGHT) provision
	$(TERRAFORM) init -input=false
	$(TERRAFORM) apply $(if $(AUTO_APPROVE),-auto-approve -input=false)
	$(TERRAFORM) output -json | $(PY) scripts/aws/inventory_from_outputs.py --output $(AWS_INVENTORY)/hosts.yml
	$(PY) scripts/aws/wait_for_ssh.py "$$($(TERRAFORM) output -raw public_ip)" --timeout $(SSH_WAIT)
	$(ANSIBLE_DEPLOY)

.PHONY: aws-inventory
aws-inventory: $(VENV)/.installed ## Rewrite inventories/aws/hosts.yml from the Terraform outputs
	@$(AWS_PREFLIGHT) inventory
	$(TERRAFORM) output -json | $(PY) scripts/aws/inventory_from_outputs.py --output $(AWS_INVENTORY)/hosts.yml

.PHONY: deploy
deploy: $(VENV)/.installed ## Run the Ansible deploy playbook on the provisioned host (no Terraform)
	@$(AWS_PREFLIGHT) deploy
	$(ANSIBLE_DEPLOY)

# A logical backup on the host: ClickHouse with the processor's checkpoint, Metabase's
# database (ansible/playbooks/backup.yml; README, "Backups and restore"). BACKUP names
# it (default: the UTC time).
BACKUP_PLAYBOOK  ?= ansible/playbooks/backup.yml
RESTORE_PLAYBOOK ?= ansible/playbooks/restore.yml
ANSIBLE_RUN      := ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg ansible-playbook -i $(AWS_INVENTORY)

.PHONY: backup
backup: $(VENV)/.installed ## Back up ClickHouse, the processor's checkpoint and Metabase's database on the host (BACKUP=name)
	@$(PY) scripts/aws/preflight.py --tf-dir $(TF_DIR) --playbook $(BACKUP_PLAYBOOK) --inventory-dir $(AWS_INVENTORY) deploy
	$(ANSIBLE_RUN) $(BACKUP_PLAYBOOK) $(if $(BACKUP),-e 'backup_name=$(BACKUP)')

# Replaces everything ClickHouse and Metabase hold by the backup's; asks for the word
# "restore" first (CONFIRM=restore answers it ahead).
.PHONY: restore
restore: $(VENV)/.installed ## Put a backup back on the host (make restore BACKUP=name; asks first)
	@test -n "$(BACKUP)" || { echo "error: name the backup: make restore BACKUP=<name> (see the backups folder on the host)" >&2; exit 1; }
	@$(PY) scripts/aws/preflight.py --tf-dir $(TF_DIR) --playbook $(RESTORE_PLAYBOOK) --inventory-dir $(AWS_INVENTORY) deploy
	@answer="$(CONFIRM)"; \
	if [ "$$answer" != restore ]; then \
	  read -r -p "This replaces ClickHouse's tables, the processor's checkpoint and Metabase's database on the host by backup $(BACKUP)'s; what was stored after it is lost (events still in Kafka are read again). Type 'restore' to go on: " answer || true; \
	fi; \
	[ "$$answer" = restore ] || { echo "aborted: nothing was restored" >&2; exit 1; }
	$(ANSIBLE_RUN) $(RESTORE_PLAYBOOK) -e 'backup_name=$(BACKUP)'

# Both tunnels run the ssh command Terraform wrote into the output named by $(1),
# checked and run without a shell (scripts/aws/tunnel.py): never eval what it printed.
define open_tunnel
@$(TERRAFORM) output -json 2>/dev/null | $(PY) scripts/aws/tunnel.py $(1) --tf-dir $(TF_DIR)
endef

.PHONY: tunnel
tunnel: $(VENV)/.installed ## Forward Metabase (3000) and the Spark UIs (8080, 4040) to localhost over SSH
	@$(AWS_PREFLIGHT) tunnel
	$(call open_tunnel,tunnel_command)

.PHONY: tunnel-ssm
tunnel-ssm: $(VENV)/.installed ## The same tunnel through SSM Session Manager (no port 22 needed)
	@$(AWS_PREFLIGHT) tunnel-ssm
	$(call open_tunnel,tunnel_command_ssm)

# Asks for the word "destroy" on the terminal; CONFIRM=destroy answers it ahead.
.PHONY: destroy
destroy: $(VENV)/.installed ## Delete the appliance, its data and its network from AWS (asks first)
	@$(AWS_PREFLIGHT) destroy
	@answer="$(CONFIRM)"; \
	if [ "$$answer" != destroy ]; then \
	  read -r -p "This deletes the EC2 host, its disks (all Kafka, ClickHouse and Metabase data; the snapshots stay until DLM's retention or you delete them) and its network, lifting termination protection. Type 'destroy' to go on: " answer || true; \
	fi; \
	[ "$$answer" = destroy ] || { echo "aborted: nothing was destroyed" >&2; exit 1; }
	$(TERRAFORM) init -input=false
	@# The typed word is the permission termination protection asks for: lift it on the
	@# instance alone (nothing else changes), then destroy everything.
	$(TERRAFORM) apply -input=false -auto-approve -target=aws_instance.appliance -var=termination_protection=false
	$(TERRAFORM) destroy -input=false -auto-approve -var=termination_protection=false
	rm -f $(AWS_INVENTORY)/hosts.yml

# ---------------------------------------------------------------- Ansible roles (ansible/)
# Molecule boots one Debian 12 container per role (systemd as PID 1, a Docker engine
# inside where the role needs one). Nothing can be pulled here, so the engine comes from
# Debian and every image is built locally; all of it is cached under .cache/molecule.
MOLECULE_IMAGE      := clickstream/debian12-systemd:bookworm
# The same plus Debian's docker.io, for the scenarios that need an engine only as a
# prerequisite: those whose prepare.yml asks for it (molecule_prepare_engine: true). The
# others (common; docker, which installs the engine itself) boot the bare image.
MOLECULE_ENGINE_IMAGE := clickstream/debian12-systemd-docker:bookworm
MOLECULE_CACHE      := $(CACHE)/molecule
DEBIAN_MIRROR       ?= http://deb.debian.org/debian
# Every role that has a scenario, in the order a deploy applies them.
MOLECULE_ORDER      := common docker kafka clickstream_app clickhouse spark metabase producer processor notifier
MOLECULE_FOUND      := $(patsubst ansible/roles/%/molecule/default/molecule.yml,%,$(wildcard ansible/roles/*/molecule/default/molecule.yml))
MOLECULE_ROLES      ?= $(filter $(MOLECULE_FOUND),$(MOLECULE_ORDER)) $(filter-out $(MOLECULE_ORDER),$(MOLECULE_FOUND))
# What `make molecule` (and so `make test`) needs first. The processor scenario copies the
# Kafka connector's jars from $(JARS)/spark-kafka into its instance.
MOLECULE_DEPS       := $(VENV)/.installed molecule-engine molecule-image molecule-images $(JARS)/spark-kafka/.resolved

.PHONY: molecule-engine
molecule-engine: ## Make sure a Docker engine answers (installs docker.io, starts dockerd)
	@ansible/molecule/bin/container-engine.sh $(CACHE)/dockerd.log

.PHONY: molecule-image
molecule-image: molecule-engine ## Build the Debian 12 systemd images the scenarios boot (bare, and with docker.io)
	@mkdir -p $(MOLECULE_CACHE)/apt/archives $(MOLECULE_CACHE)/images
	@ansible/molecule/bin/base-image.sh $(MOLECULE_IMAGE) $(MOLECULE_CACHE)/debian12-systemd.tar $(DEBIAN_MIRROR)
	@ansible/molecule/bin/engine-image.sh $(MOLECULE_IMAGE) $(MOLECULE_ENGINE_IMAGE) $(MOLECULE_CACHE)/apt/archives ansible/roles/docker/defaults/main.yml

.PHONY: molecule-images
molecule-images: molecule-image $(MOLECULE_CACHE)/images/kafka.tar $(MOLECULE_CACHE)/images/spark.tar ## Build the Kafka and Spark stand-in images

$(MOLECULE_CACHE)/images/kafka.tar: ansible/molecule/images/kafka/* ansible/molecule/images/kafka/bin/* ansible/molecule/images/jre17/Dockerfile ansible/molecule/bin/standin-image.sh
	@ansible/molecule/bin/standin-image.sh kafka $(MOLECULE_IMAGE) $@

$(MOLECULE_CACHE)/images/spark.tar: ansible/molecule/images/spark/* ansible/molecule/images/jre17/Dockerfile ansible/molecule/bin/standin-image.sh $(VENV)/.installed
	@ansible/molecule/bin/standin-image.sh spark $(MOLECULE_IMAGE) $@

.PHONY: molecule
molecule: $(MOLECULE_DEPS) ## Run every role's Molecule scenario (MOLECULE_ROLES="kafka spark" for some)
	@set -e; total=0; for role in $(MOLECULE_ROLES); do \
	  start=$$(date +%s); image=$(MOLECULE_IMAGE); \
	  if grep -qs '^ *molecule_prepare_engine: true' ansible/roles/$$role/molecule/default/prepare.yml; then \
	    image=$(MOLECULE_ENGINE_IMAGE); fi; \
	  echo "==> molecule test: $$role ($$image)"; \
	  (cd ansible/roles/$$role && MOLECULE_INSTANCE=clickstream-$$role MOLECULE_INSTANCE_IMAGE=$$image \
	    ../../../$(VENV)/bin/molecule test); \
	  took=$$(( $$(date +%s) - start )); total=$$(( total + took )); \
	  echo "==> $$role: passed in $${took}s"; \
	done; echo "==> molecule: $(words $(MOLECULE_ROLES)) scenarios passed in $${total}s"

.PHONY: lint-ansible
lint-ansible: $(VENV)/.installed ## yamllint and ansible-lint (production profile) on ansible/ and inventories/
	$(VENV)/bin/yamllint -c ansible/.yamllint ansible inventories .config/molecule
	cd ansible && ../$(VENV)/bin/ansible-lint -c .ansible-lint

# ---------------------------------------------------------------- quality
# Last, so the other sections' prerequisite lists (INFRA_DEPS, MOLECULE_DEPS) are known.

.PHONY: lint
lint: $(VENV)/.installed lint-ansible ## ruff (Python); yamllint and ansible-lint (Ansible); terraform fmt where terraform is installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if command -v terraform >/dev/null; then \
	  echo "terraform fmt -check -recursive terraform"; \
	  terraform fmt -check -recursive -diff terraform; \
	else echo "terraform fmt: not checked (no terraform on PATH; make provision needs one anyway)"; fi

.PHONY: test
test: setup $(JARS)/kafka-tools/.resolved $(INFRA_DEPS) $(MOLECULE_DEPS) ## Run every test: unit, integration (real Kafka, Spark, chDB), infra, then every role's Molecule scenario
	$(PY) -m pytest tests
	$(MAKE) --no-print-directory molecule
