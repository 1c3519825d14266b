// A callback-style handler: Lambda answers after the callback once the event loop is empty, unless
// context.callbackWaitsForEmptyEventLoop is false.
const fired = [];

export const handler = (event, context, callback) => {
  const { id, timerMs, wait } = JSON.parse(event.body);
  if (wait === false) context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => fired.push(id), timerMs);
  callback(null, { pid: process.pid, id, firedBefore: [...fired] });
};
