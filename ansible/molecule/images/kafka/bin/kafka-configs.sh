#!/bin/bash
# Stand-in for Kafka's kafka-configs.sh: the same class the distribution's script runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
