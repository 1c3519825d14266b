const connections = require("../lib/connections");

exports.handler = async (event) => {
  await connections.add(event.requestContext.connectionId);
  return { statusCode: 200, body: "Connected." };
};
