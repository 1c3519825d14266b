"""The API Gateway management API (``@connections``): PostToConnection / GetConnection / DeleteConnection.

``api`` answers the calls (the same code on every listener); ``listener`` is the lean HTTP/1.1 server of
the TLS listener handlers reach.
"""
