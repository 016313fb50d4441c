#!/bin/bash
# Stand-in for Kafka's kafka-storage.sh: the same class the distribution's script runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
