const {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} = require("@aws-sdk/client-apigatewaymanagementapi");
const connections = require("../lib/connections");

exports.handler = async (event) => {
  const { apiId, stage, connectionId } = event.requestContext;
  // The API's own hostname, not domainName (a custom domain would change that one).
  const endpoint = `https://${apiId}.execute-api.${process.env.AWS_REGION}.amazonaws.com/${stage}`;
  const management = new ApiGatewayManagementApiClient({ endpoint });
  const Data = JSON.stringify({ from: connectionId, data: JSON.parse(event.body).data });
  let sent = 0;
  for (const to of await connections.all()) {
    try {
      await management.send(new PostToConnectionCommand({ ConnectionId: to, Data }));
      sent += 1;
    } catch (error) {
      if (error.$metadata?.httpStatusCode !== 410) throw error;
      await connections.remove(to); // gone: it left without a $disconnect reaching us
    }
  }
  return { statusCode: 200, body: `Sent to ${sent}.` };
};
