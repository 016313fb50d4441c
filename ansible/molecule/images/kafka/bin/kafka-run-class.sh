#!/bin/bash
# Stand-in for Kafka's kafka-run-class.sh (the distribution's scripts are not on Maven
# Central): run a class of the Kafka jars, quietly, with a small heap for tools.
# shellcheck disable=SC2086  # KAFKA_TOOLS_HEAP_OPTS holds several JVM arguments
exec java ${KAFKA_TOOLS_HEAP_OPTS:--Xmx256m} \
    -Dlog4j2.configurationFile=/etc/kafka/docker/tools-log4j2.properties \
    -cp '/opt/kafka/libs/*' "$@"
