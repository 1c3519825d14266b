export const handler = async () => {
  await new Promise((resolve) => setTimeout(resolve, 30_000));
  return "too late";
};
