#!/usr/bin/env bash
# Build a stand-in image (kafka or spark, see ansible/molecule/images/README.md) and save
# it as an archive the scenarios load into their instance's engine. An image already in
# the engine is only saved again.
#
# usage: standin-image.sh NAME BASE_IMAGE OUTPUT_TAR
set -euo pipefail

name=${1:?usage: standin-image.sh NAME BASE_IMAGE OUTPUT_TAR}
base=${2:?}
out=${3:?}
root=$(cd "$(dirname "$0")/../../.." && pwd)
images=$root/ansible/molecule/images
context=$root/.cache/molecule/build/$name
jre=clickstream/standin-jre17:bookworm

case $name in
    kafka) tag=clickstream/standin-kafka:4.1.1 ;;
    spark) tag=clickstream/standin-spark:4.2.0 ;;
    *) echo "standin-image: unknown image $name" >&2; exit 2 ;;
esac

if ! docker image inspect "$jre" >/dev/null 2>&1; then
    echo "standin-image: building $jre (Debian's OpenJDK 17)"
    docker build -q --build-arg "BASE=$base" -t "$jre" "$images/jre17" >/dev/null
fi

if ! docker image inspect "$tag" >/dev/null 2>&1; then
    rm -rf "$context"
    mkdir -p "$context"
    cp -a "$images/$name/." "$context/"
    case $name in
        kafka)
            command -v mvn >/dev/null || { echo "standin-image: mvn (Maven) is missing" >&2; exit 1; }
            echo "standin-image: resolving the Kafka 4.1.1 jars from Maven Central"
            mvn -q -B -f "$images/kafka/pom.xml" dependency:copy-dependencies \
                -DincludeScope=runtime -DoutputDirectory="$context/libs"
            ;;
        spark)
            pyspark=$("$root/.venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
            mkdir -p "$context/spark"
            cp -a "$pyspark/bin" "$pyspark/sbin" "$pyspark/jars" "$context/spark/"
            ;;
    esac
    echo "standin-image: building $tag"
    docker build -q -t "$tag" "$context" >/dev/null
    rm -rf "$context"
fi

mkdir -p "$(dirname "$out")"
docker save -o "$out.tmp" "$tag"
mv "$out.tmp" "$out"
echo "standin-image: $tag saved to $out ($(du -h "$out" | cut -f1))"
