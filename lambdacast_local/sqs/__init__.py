"""SQS and Lambda's SQS event source mappings.

``model`` reads the template's queues and event sources; ``pollers`` invokes functions with batches, as
the event source mapping does (the queues themselves live in the embedded AWS).
"""
