"""Event fan-out to RabbitMQ: the process's broker connection and the ``events.publish``
job that publishes each committed event (see ``paygrid.broker.publisher``)."""
