"""The AWS services handlers call, on this machine.

``services`` runs moto in server mode with the template's tables and queues; ``endpoints`` serves AWS's
public service hostnames over TLS, relayed to it; ``moto_transactions`` makes moto's DynamoDB
transactions cost the items they touch.
"""
