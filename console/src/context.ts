import type { Problem } from "./problems.ts";

// What a view may ask of the console around it.
export interface Context {
  // False once the person has navigated elsewhere: late answers are then dropped.
  isCurrent(): boolean;
  // The server refused the token: forget it and go back to sign-in, saying why.
  signedOut(problem: Problem): void;
  signedIn(token: string): void;
  // The list as last shown, for the way back from a user.
  listHash(): string;
  setListHash(hash: string): void;
}

export interface View {
  readonly title: string;
  readonly element: HTMLElement;
  // Receives focus when the view is shown.
  readonly heading: HTMLElement;
}
