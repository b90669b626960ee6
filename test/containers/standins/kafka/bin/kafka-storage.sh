#!/bin/bash
# TEST FIXTURE (see ../Containerfile): Kafka's kafka-storage.sh.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
