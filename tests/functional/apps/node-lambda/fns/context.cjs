// CommonJS (.cjs) inside an ES-module package: what the context and the environment say.
const loadedAt = Date.now();
let invocations = 0;

exports.handler = async (event, context) => {
  invocations += 1;
  console.log(`context handler says ${JSON.parse(event.body || "{}").say || "nothing"}`);
  const env = {};
  for (const name of ["AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "_HANDLER", "GREETING", "NODE_EXTRA_CA_CERTS", "HOME"]) {
    env[name] = process.env[name] ?? null;
  }
  return {
    pid: process.pid,
    loadedAt,
    invocations,
    context: JSON.parse(JSON.stringify(context)),
    remaining: context.getRemainingTimeInMillis(),
    env,
    cwd: process.cwd(),
  };
};
