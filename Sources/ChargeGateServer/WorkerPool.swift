// The worker loop lives here.
