#!/bin/bash
# TEST FIXTURE (see ../Containerfile): Kafka's kafka-topics.sh.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
