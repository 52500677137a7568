/** The HTTP Basic header the gateway's API and the runtime's CLI use (docs/runtime.md). */
export function basicAuthHeader(creds: { user: string; password: string }): string {
  return 'Basic ' + Buffer.from(`${creds.user}:${creds.password}`).toString('base64');
}
