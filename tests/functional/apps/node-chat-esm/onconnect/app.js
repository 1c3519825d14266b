import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";

const dynamodb = new DynamoDBClient({});

export const handler = async (event) => {
  const Item = { connectionId: { S: event.requestContext.connectionId } };
  await dynamodb.send(new PutItemCommand({ TableName: process.env.TABLE_NAME, Item }));
  return { statusCode: 200, body: "Connected." };
};
