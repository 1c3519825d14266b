"""API Gateway HTTP APIs (``AWS::Serverless::HttpApi``, ``ProtocolType: HTTP``).

``model`` reads them from a template (OpenAPI ``Body`` or ``AWS::ApiGatewayV2::Route`` resources);
``gateway`` serves them over aiohttp (route matching, ``AWS_IAM``, payload format 2.0).
"""
