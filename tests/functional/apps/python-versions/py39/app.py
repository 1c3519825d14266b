from report import report_to_sender


def handler(event, context):
    report_to_sender(event)
    return {"statusCode": 200}
