"""The local runtime behind `make demo`: a real Kafka broker, the topic, the terminal view."""
