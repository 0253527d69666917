// The token lives in memory and in this tab's sessionStorage (so that a reload keeps the tab
// signed in); never in a cookie, the address bar or a log. Closing the tab or signing out forgets it.

const key = "latchkey.console.token";
let token: string | null = null;

function stored(): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

export function currentToken(): string | null {
  token ??= stored();
  return token;
}

export function remember(value: string): void {
  token = value;
  try {
    sessionStorage.setItem(key, value);
  } catch {
    // Storage refused (private mode, quota): the token stays in memory for this page only.
  }
}

export function forget(): void {
  token = null;
  try {
    sessionStorage.removeItem(key);
  } catch {
    // Nothing was stored.
  }
}
