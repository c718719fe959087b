/** What a tool asks its user for mid-call (MCP elicitation, docs/tools.md "Input for a tool"), as a form's schema. */
export interface ToolInputRequest {
  id: string
  sessionId: string
  /** The reply whose tool call asks. */
  replyId: string
  callId: string
  message: string
  /** The form: a flat object schema of strings, numbers, booleans and enums. */
  requestedSchema: Record<string, unknown>
  createdAt: string
  expiresAt: string
}

/** The user's answer: the form's values when accepted. */
export interface ToolInputAnswer {
  action: 'accept' | 'decline' | 'cancel'
  content?: Record<string, string | number | boolean | string[]> | undefined
}

/**
 * Tool calls waiting for their user's input, kept in the database so that whichever instance takes
 * the answer can check it and record it; the instance running the call reads it from here.
 */
export interface InputStore {
  /** Records a request while its call waits (on PostgreSQL, as this instance's). */
  askForInput(request: ToolInputRequest): Promise<void>
  /** The oldest request of `callId` in `ownerId`'s session `sessionId` still waiting at `now`, if any. */
  pendingInput(sessionId: string, ownerId: string, callId: string, now: string): Promise<ToolInputRequest | undefined>
  /** Records the answer of a request still waiting at `now`: false when it was answered or ran out meanwhile. */
  answerInput(id: string, answer: ToolInputAnswer, now: string): Promise<boolean>
  /** A request's answer, once there is one. */
  inputAnswer(id: string): Promise<ToolInputAnswer | null>
  /** Forgets a request once its call has its answer (or gave up waiting). */
  dropInput(id: string): Promise<void>
}
