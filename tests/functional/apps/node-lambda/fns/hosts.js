// AWS hostnames built by the handler itself: they reach the emulator, verified TLS; other hosts do not.
import tls from "node:tls";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";

const probe = (host, port) =>
  new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername: host }, () => {
      resolve({ connected: true, authorized: socket.authorized, address: socket.remoteAddress, port: socket.remotePort });
      socket.end();
    });
    socket.on("error", (error) => resolve({ connected: false, code: error.code, port: error.port ?? null }));
  });

export const handler = async (event) => {
  const region = process.env.AWS_REGION;
  const dynamodb = new DynamoDBClient({ endpoint: `https://dynamodb.${region}.amazonaws.com` });
  const { TableNames } = await dynamodb.send(new ListTablesCommand({}));
  return {
    tables: TableNames,
    dynamodb: await probe(`dynamodb.${region}.amazonaws.com`, 443),
    api: await probe(`${event.requestContext.apiId}.execute-api.${region}.amazonaws.com`, 443),
    other: await probe("localhost", 1),
  };
};
