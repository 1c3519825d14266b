import { DynamoDBClient, ScanCommand, DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";

const dynamodb = new DynamoDBClient({});
const TableName = process.env.TABLE_NAME;

export const handler = async (event) => {
  const { apiId, stage, connectionId } = event.requestContext;
  const scan = await dynamodb.send(new ScanCommand({ TableName, ProjectionExpression: "connectionId" }));
  // https://<apiId>.execute-api.<region>.amazonaws.com/<stage>, as a custom domain would not change it.
  const management = new ApiGatewayManagementApiClient({
    endpoint: `https://${apiId}.execute-api.${process.env.AWS_REGION}.amazonaws.com/${stage}`,
  });
  const Data = JSON.stringify({ from: connectionId, data: JSON.parse(event.body).data });
  const posts = scan.Items.map(async ({ connectionId: { S: to } }) => {
    try {
      await management.send(new PostToConnectionCommand({ ConnectionId: to, Data }));
    } catch (error) {
      if (error.name !== "GoneException") throw error;
      await dynamodb.send(new DeleteItemCommand({ TableName, Key: { connectionId: { S: to } } }));
    }
  });
  await Promise.all(posts);
  return { statusCode: 200, body: "Data sent." };
};
