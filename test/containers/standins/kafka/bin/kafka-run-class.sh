#!/bin/bash
# TEST FIXTURE (see ../Containerfile): runs a class of Kafka's jars, as Kafka's own script does.
# KAFKA_HEAP_OPTS (default 256 MB for tools), KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS
# (default: the tools' configuration, WARN to stderr), KAFKA_OPTS.
main="$1"
shift
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true} \
  ${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties} \
  ${KAFKA_OPTS:-} -cp '/opt/kafka/libs/*' "$main" "$@"
