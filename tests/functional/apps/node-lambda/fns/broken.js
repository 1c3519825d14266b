import { NoSuchClient } from "@aws-sdk/client-that-does-not-exist";

export const handler = async () => new NoSuchClient();
