/**
 * A client's secret on a request to an OAuth server's endpoint, RFC 6749 §2.3.1: in Basic, with
 * id and secret form-urlencoded before the Base64 encoding, or as body parameters.
 */
export function addClientSecret(
  form: URLSearchParams,
  headers: Record<string, string>,
  clientId: string,
  method: 'client_secret_basic' | 'client_secret_post',
  secret: string,
): void {
  if (method === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  } else {
    form.set('client_id', clientId);
    form.set('client_secret', secret);
  }
}
