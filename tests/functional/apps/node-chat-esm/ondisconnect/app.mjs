import { DynamoDBClient, DeleteItemCommand } from "@aws-sdk/client-dynamodb";

const dynamodb = new DynamoDBClient({});

export async function handler(event) {
  const Key = { connectionId: { S: event.requestContext.connectionId } };
  await dynamodb.send(new DeleteItemCommand({ TableName: process.env.TABLE_NAME, Key }));
  return { statusCode: 200, body: "Disconnected." };
}
