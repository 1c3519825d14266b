// A callback-style handler: Lambda answers after the callback once the event loop is empty, unless
// context.callbackWaitsForEmptyEventLoop is false.
const fired = [];
const timers = [];

export const handler = (event, context, callback) => {
  const { id, timerMs, wait, fresh } = JSON.parse(event.body);
  if (fresh) timers.splice(0).forEach(clearTimeout); // forget timers earlier invocations left running
  if (wait === false) context.callbackWaitsForEmptyEventLoop = false;
  timers.push(setTimeout(() => fired.push(id), timerMs));
  callback(null, { pid: process.pid, id, firedBefore: [...fired] });
};
