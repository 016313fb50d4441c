"""The click event producer: a seeded traffic model published to Kafka."""
