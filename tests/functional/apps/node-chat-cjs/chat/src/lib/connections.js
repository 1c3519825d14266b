// The connections table, through the DynamoDB document client of the SDK v3 the runtime provides.
const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
const { DynamoDBDocumentClient, PutCommand, DeleteCommand, ScanCommand } = require("@aws-sdk/lib-dynamodb");

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const TableName = process.env.TABLE_NAME;

module.exports = {
  add: (connectionId) => documents.send(new PutCommand({ TableName, Item: { connectionId } })),
  remove: (connectionId) => documents.send(new DeleteCommand({ TableName, Key: { connectionId } })),
  async all() {
    const { Items } = await documents.send(new ScanCommand({ TableName, ProjectionExpression: "connectionId" }));
    return Items.map((item) => item.connectionId);
  },
};
