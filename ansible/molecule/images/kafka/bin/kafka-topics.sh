#!/bin/bash
# Stand-in for Kafka's kafka-topics.sh: the same class the distribution's script runs.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
