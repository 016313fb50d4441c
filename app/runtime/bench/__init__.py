"""`make bench`: what the local pipeline's parts can do, on one broker. Not a test.

a) producers side by side on the same pre-generated events: kafka-python, confluent-kafka
   and Kafka's Java ProducerPerformance (records of the events' mean size);
b) the producer program flat out with each PRODUCER_CLIENT;
c) the job alone draining a backlog, MAX_OFFSETS_PER_TRIGGER records a batch;
d) the sustainable rate: the highest steady input at which the Kafka lag stays bounded
   and p99 freshness stays within the limit, found by a search over rates;
e) freshness p50/p95/p99 at fixed rates;
f) peak resident memory of every process, their sum, and the whole stack's at once;
g) a plot of freshness and lag against the input rate.

Runs under DATA_DIR/bench (wiped first) on its own broker port; writes results.json and
bench.png there and prints a table. --quick runs the same stages small, in minutes.
"""
