package storetest

import (
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// Run runs the conformance suite against stores made by newStore. newStore returns a
// ready store for one test case and arranges (with t.Cleanup) for it to be closed;
// stores from several calls may share one database. Cases run in parallel.
func Run(t *testing.T, newStore func(t testing.TB) dsync.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s dsync.Store)
	}{
		{"Ping_AnswersWhenOpen", testPing},

		{"Layout_CreateThenReadRoundTripsExactly", testLayoutRoundTrip},
		{"Layout_NilItemsAndSettingsComeBackEmpty", testLayoutNilMaps},
		{"Layout_OtherOwnerGetsNotFound", testLayoutOwnerScope},
		{"Layout_ListIsOwnersOnlyOldestFirst", testLayoutListOrder},
		{"Layout_UpdateReplacesDocumentAndAppendsChange", testLayoutUpdate},
		{"Layout_UpdateIsCompareAndSwapOnVersion", testLayoutUpdateCAS},
		{"Layout_ChangesAreAfterExclusiveUpToInclusiveAscending", testLayoutChangesRange},
		{"Layout_PathsAreEachChangesDistinctPaths", testLayoutPaths},
		{"Layout_HistoryIsBeforeExclusiveNewestFirstLimited", testLayoutHistory},
		{"Layout_ChangeByEditFindsOnlyThatLayoutsEdit", testLayoutChangeByEdit},
		{"Layout_TrimDeletesChangesUpToVersion", testLayoutTrim},
		{"Layout_DeleteRemovesLayoutAndItsChanges", testLayoutDelete},
		{"Layout_SecondDefaultForOwnerIsStale", testLayoutOneDefault},
		{"Layout_CreateWithTakenIDIsStale", testLayoutCreateTakenID},
		{"Layout_CreateOrUpdateWithInconsistentVersionsFails", testLayoutBadVersions},

		{"Widget_CreateThenReadRoundTripsExactly", testWidgetRoundTrip},
		{"Widget_OtherOwnerGetsNotFound", testWidgetOwnerScope},
		{"Widget_UpdateIsCompareAndSwapOnVersion", testWidgetUpdateCAS},
		{"Widget_DuplicateEditIDIsRejectedAndNothingWritten", testWidgetDuplicateEdit},
		{"Widget_ChangesRangeTrimAndDelete", testWidgetChangesTrimDelete},

		{"Dashboard_NeverSavedIsVersionZero", testDashboardNeverSaved},
		{"Dashboard_PutThenReadRoundTripsExactly", testDashboardRoundTrip},
		{"Dashboard_PutIsCompareAndSwapOnVersion", testDashboardCAS},

		{"Access_LayoutAsGivesOwnerMemberOrNoRole", testAccessLayoutAs},
		{"Access_NeverSharedIsEmptyAtVersionZero", testAccessNeverShared},
		{"Access_PutIsCompareAndSwapAndReplacesMembers", testAccessPutCAS},
		{"Access_SharedWithIsMembershipsOldestFirstWithRoles", testAccessSharedWith},
		{"Access_LinksCreateReadListAndRevokeOnce", testAccessLinks},
		{"Access_DeleteLayoutRemovesAccessAndLinks", testAccessDeleteLayout},
		{"Access_ReadsSeeOwnWritesOthersOnlyAfterCommit", testAccessTxIsolation},
		{"Access_ErrorRollsBackAccessAndLinkWrites", testAccessRollback},
		{"Access_FailedWriteLeavesTransactionUsable", testAccessFailedWritesKeepTx},
		{"Access_ConcurrentPutsOnOneVersionOneWins", testAccessRace},

		{"Group_ReadForEditsGivesWhatEachLayoutsEditsNeed", testReadForEdits},
		{"Group_WriteLayoutsWritesEachFromItsVersionOrIsStale", testWriteLayouts},
		{"Group_EditsCommitInOneTransactionEachWithItsOwnOutcome", testGroupCommit},

		{"InTx_ErrorRollsBackEverythingAndIsReturnedUnchanged", testTxRollback},
		{"InTx_PanicRollsBackAndStoreStaysUsable", testTxPanic},
		{"InTx_ReadsSeeOwnWritesOthersOnlyAfterCommit", testTxIsolation},
		{"InTx_FailedWriteLeavesTransactionUsable", testTxFailedWriteKeepsTx},

		{"Context_CancelledContextReturnsItsError", testCancelledContext},
		{"Close_UseAfterCloseIsUnavailable", testUseAfterClose},

		{"Race_ConcurrentCommitsOnOneBaseReadInTx", testRaceReadInTx},
		{"Race_ConcurrentCommitsOnOneBaseReadBeforeTx", testRaceReadBeforeTx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.run(t, s)
		})
	}
}

func testPing(t *testing.T, s dsync.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: got %v, want nil", err)
	}
}
