const connections = require("../lib/connections");

exports.handler = async (event) => {
  await connections.remove(event.requestContext.connectionId);
  return { statusCode: 200, body: "Disconnected." };
};
