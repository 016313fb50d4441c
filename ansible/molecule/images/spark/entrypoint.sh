#!/bin/bash
# Entry point of the Spark stand-in image: like apache/spark's for anything but the
# Kubernetes "driver"/"executor" modes, it runs the command it is given
# (e.g. /opt/spark/bin/spark-class org.apache.spark.deploy.master.Master ...).
set -euo pipefail
exec "$@"
