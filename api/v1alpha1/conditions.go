package v1alpha1

// Condition types of a NamingService.
const (
	// ConditionReady is True when the last pass observed EC2 completely and
	// the ledger matches it.
	ConditionReady = "Ready"
	// ConditionDegraded is True when names could not be kept true: the
	// ledger failed, the reap cap held releases back, or the spec is bad.
	ConditionDegraded = "Degraded"
	// ConditionThrottled is True when EC2 throttled or failed the listing,
	// so nothing was released this pass.
	ConditionThrottled = "Throttled"
	// ConditionAliasesRefused is True when aliases were asked for that
	// would shadow another service's name, localhost or a cluster name, or
	// lie outside the allowed suffixes; they are not written.
	ConditionAliasesRefused = "AliasesRefused"
	// ConditionEventsHealthy is set only when the controller receives EC2
	// events (--sqs-queue-url): False when the queue fails or is silent and
	// the controller polls as often as without events.
	ConditionEventsHealthy = "EventsHealthy"
)

// Condition reasons.
const (
	ReasonSynced          = "Synced"   // Ready=True, Degraded=False
	ReasonObserved        = "Observed" // Throttled=False
	ReasonRequestLimit    = "RequestLimitExceeded"
	ReasonListingFailed   = "ListingFailed"   // error or partial listing
	ReasonLedgerError     = "LedgerError"     // read or write failed
	ReasonLedgerConflict  = "LedgerConflict"  // lost a compare-and-set; re-planning
	ReasonReapCapped      = "ReapCapped"      // releases deferred by maxReleasePercent
	ReasonReleaseBudget   = "ReleaseBudget"   // releases refused by the budget over a time window
	ReasonInvalidSpec     = "InvalidSpec"     // spec the planner refuses
	ReasonPlanProblems    = "PlanProblems"    // e.g. 1.x duplicate records
	ReasonNotObserved     = "NotObserved"     // Ready=False: EC2 not observed
	ReasonChangesDeferred = "ChangesDeferred" // Ready=False: work left for the next pass
	ReasonAliasesRefused  = "AliasesRefused"  // AliasesRefused=True
	ReasonAliasesAllowed  = "AliasesAllowed"  // AliasesRefused=False
	ReasonEventsReceived  = "EventsReceived"  // EventsHealthy=True
	ReasonEventsFailing   = "EventsFailing"   // EventsHealthy=False: queue errors or silence
)

// Event reasons: one Event per change.
const (
	EventNameBound     = "NameBound"
	EventNameReleased  = "NameReleased"
	EventMasterMoved   = "MasterMoved"
	EventReapCapped    = "ReapCapped"
	EventReleaseBudget = "ReleaseBudget"
	EventObserveFailed = "ObserveFailed"
	EventAliasRefused  = "AliasRefused"
)
