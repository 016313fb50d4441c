#!/bin/bash
# Stand-in for Kafka's kafka-broker-api-versions.sh: the same class the distribution's script runs.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
