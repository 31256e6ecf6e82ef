// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

interface IDepinToken {
    function emissionFor(uint64 epoch) external view returns (uint256);
    function mintEpochEmission(uint64 epoch, address to, uint256 amount) external;
}

/// @title RewardDistributor
/// @notice Funds each settled epoch and pays claims. An epoch's reward total is paid first from
/// its emission (minted here, never past the schedule), then from the fee pool (usage fees and
/// slashed bonds); a total beyond both is refused. The rewards root commits to cumulative amounts
/// per account over every epoch so far, as an OpenZeppelin StandardMerkleTree of
/// (address account, uint256 cumulativeAmount) with double-hashed leaves, so one claim with one
/// proof pays everything owed under that root: cumulativeAmount minus what was claimed.
/// Anyone may submit a claim for an account; the tokens always go to the account.
///
/// The roots of the last ROOT_RING_SIZE epochs stay claimable (a ring indexed by epoch), and a
/// claim names the epoch whose root its proof is against, so a proof fetched a few epochs ago
/// still pays. That is safe because amounts are cumulative and `claimed` only grows: a claim
/// against any root pays that root's cumulative amount minus what the account was already paid,
/// so whichever roots an account's claims use, it receives in all the largest amount among them,
/// never a sum, and since an account's amount only grows from one root to the next, never more
/// than its latest cumulative amount; a claim against an older root after one against a newer
/// root pays nothing. Every root in the ring was accepted by a quorum.
contract RewardDistributor {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice How many epochs a rewards root stays claimable. The root of epoch e lives in slot
    /// e % ROOT_RING_SIZE until a later epoch settles into that slot: for at least ROOT_RING_SIZE
    /// epochs (16 minutes at 30 s epochs), longer when epochs are skipped.
    uint64 public constant ROOT_RING_SIZE = 32;

    error DistributorUnauthorized(address caller);
    error DistributorTotalExceedsFunds(uint64 epoch, uint256 total, uint256 available);
    /// @notice No root was settled for `epoch` (not yet, or the epoch was skipped).
    error DistributorNoRoot(uint64 epoch);
    /// @notice The root of `epoch` has left the ring: a later epoch's root took its slot.
    error DistributorRootExpired(uint64 epoch);
    error DistributorInvalidProof(address account, uint256 cumulativeAmount);
    error DistributorNothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);

    event EpochFunded(uint64 indexed epoch, bytes32 rewardsRoot, uint256 minted, uint256 fromFees);
    event FeesDeposited(address indexed from, uint256 amount);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, address indexed submitter);

    IERC20 private immutable _token;
    address private immutable _epochManager;

    // The ring of claimable roots. Slot e % ROOT_RING_SIZE of _boundRoots holds the root of epoch
    // e XORed with e (root ^ bytes32(uint256(e))): the root bound to its epoch in one word, so a
    // claim reads one storage slot. A claim naming epoch e matches it only with a proof that leads
    // to the root settled for e: a slot written for another epoch e' would need a proof leading to
    // that root with the bits of e ^ e' flipped, a keccak256 preimage no one can find. The epoch
    // itself is also kept, four per storage slot, in _rootEpochs, for the getters and to tell
    // an expired root from one not yet settled. No root is zero (the EpochManager refuses it), so
    // a slot holds the root of e exactly when _rootEpochs says e and _boundRoots is not e itself.
    bytes32[ROOT_RING_SIZE] private _boundRoots;
    uint64[ROOT_RING_SIZE] private _rootEpochs;
    // One storage slot, written by every settle: the latest settled epoch and the sum of all
    // settled totals (SafeCast refuses a sum beyond uint192, some 6e39 tokens of 18 decimals).
    uint64 private _rootEpoch;
    uint192 private _totalReported;
    uint256 private _feePool;
    uint256 private _totalFeesReceived;
    // No running total of claims is kept (it would cost every claim a storage write): the sum of
    // all claims is that of the Claimed events' amounts, or of claimed(account) over accounts.
    mapping(address account => uint256) private _claimed;

    /// @param token_ the DepinToken (this contract is its minter)
    /// @param epochManager_ the only contract allowed to settle epochs
    constructor(IERC20 token_, address epochManager_) {
        _token = token_;
        _epochManager = epochManager_;
    }

    /// @notice Funds `epoch` with `total` tokens and puts `root` in the ring of claimable roots,
    /// in the slot of the epoch ROOT_RING_SIZE before it. Only the EpochManager, after it accepted
    /// the epoch's report (it settles epochs in strictly increasing order).
    /// @param epoch the settled epoch
    /// @param root the epoch's rewards root (cumulative amounts over every epoch so far)
    /// @param total tokens the epoch pays out
    function settle(uint64 epoch, bytes32 root, uint256 total) external {
        if (msg.sender != _epochManager) revert DistributorUnauthorized(msg.sender);
        uint256 emission = IDepinToken(address(_token)).emissionFor(epoch);
        uint256 minted = total < emission ? total : emission;
        uint256 fromFees = total - minted;
        if (fromFees > _feePool) revert DistributorTotalExceedsFunds(epoch, total, emission + _feePool);
        // cannot underflow: checked just above
        unchecked {
            _feePool -= fromFees;
        }
        uint256 slot = epoch % ROOT_RING_SIZE;
        _boundRoots[slot] = root ^ bytes32(uint256(epoch));
        _rootEpochs[slot] = epoch;
        (_rootEpoch, _totalReported) = (epoch, (uint256(_totalReported) + total).toUint192());
        if (minted > 0) IDepinToken(address(_token)).mintEpochEmission(epoch, address(this), minted);
        emit EpochFunded(epoch, root, minted, fromFees);
    }

    /// @notice Adds `amount` tokens (approved beforehand) to the fee pool that funds future epochs.
    function depositFees(uint256 amount) external {
        _token.safeTransferFrom(msg.sender, address(this), amount);
        _feePool += amount;
        _totalFeesReceived += amount;
        emit FeesDeposited(msg.sender, amount);
    }

    /// @notice Pays `account` what it is owed under the rewards root of `epoch`, which must still
    /// be in the ring (one of the last ROOT_RING_SIZE epochs).
    /// @param account the account the leaf names; receives the tokens whoever submits
    /// @param cumulativeAmount the account's total rewards over all epochs up to `epoch`, as in the leaf
    /// @param epoch the settled epoch whose rewards root the proof is against
    /// @param proof the StandardMerkleTree proof of the leaf (account, cumulativeAmount)
    /// @return paid tokens transferred now: cumulativeAmount minus what was already claimed
    function claim(address account, uint256 cumulativeAmount, uint64 epoch, bytes32[] calldata proof)
        external
        returns (uint256 paid)
    {
        bytes32 root = _rootOfProof(proof, _leafHash(account, cumulativeAmount));
        if (root ^ bytes32(uint256(epoch)) != _boundRoots[epoch % ROOT_RING_SIZE]) {
            _refuseClaim(account, cumulativeAmount, epoch);
        }
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) revert DistributorNothingToClaim(account, cumulativeAmount, already);
        // cannot underflow: cumulativeAmount > already was checked just above
        unchecked {
            paid = cumulativeAmount - already;
        }
        _claimed[account] = cumulativeAmount;
        _token.safeTransfer(account, paid);
        emit Claimed(account, paid, cumulativeAmount, msg.sender);
    }

    /// @dev Reverts with why a claim naming `epoch` matched no root in the ring: the epoch's root is
    /// there and the proof is wrong, or its slot holds a later epoch's root, or none was settled.
    function _refuseClaim(address account, uint256 cumulativeAmount, uint64 epoch) private view {
        uint256 slot = epoch % ROOT_RING_SIZE;
        uint64 slotEpoch = _rootEpochs[slot];
        if (slotEpoch == epoch && _boundRoots[slot] != bytes32(uint256(epoch))) {
            revert DistributorInvalidProof(account, cumulativeAmount);
        }
        if (slotEpoch > epoch) revert DistributorRootExpired(epoch);
        revert DistributorNoRoot(epoch);
    }

    /// @dev The StandardMerkleTree leaf of (account, cumulativeAmount): keccak256 of
    /// keccak256(abi.encode(account, cumulativeAmount)), hashed in scratch space.
    function _leafHash(address account, uint256 cumulativeAmount) private pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            // the ABI decoder has already refused an account with dirty upper bits
            mstore(0x00, account)
            mstore(0x20, cumulativeAmount)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @dev The root `proof` leads to from `leaf`: OpenZeppelin's MerkleProof.processProofCalldata
    /// (each step the keccak256 of the sorted pair, smaller hash first), in a loop of a third of the
    /// gas per proof hash, which is the variable part of a claim's cost.
    function _rootOfProof(bytes32[] calldata proof, bytes32 leaf) private pure returns (bytes32 node) {
        assembly ("memory-safe") {
            node := leaf
            // the ABI decoder has checked that proof.length words lie within the calldata
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                // node goes to 0x00 when it is the smaller (or equal) hash, to 0x20 otherwise
                let at := shl(5, gt(node, sibling))
                mstore(at, node)
                mstore(xor(at, 0x20), sibling)
                node := keccak256(0x00, 0x40)
            }
        }
    }

    /// @notice The latest settled rewards root (that of rootEpoch()); zero before any epoch settled.
    function rewardsRoot() external view returns (bytes32) {
        uint64 epoch = _rootEpoch;
        return _boundRoots[epoch % ROOT_RING_SIZE] ^ bytes32(uint256(epoch));
    }

    /// @notice The latest settled epoch, whose report set rewardsRoot().
    function rootEpoch() external view returns (uint64) {
        return _rootEpoch;
    }

    /// @notice The rewards root of `epoch` while it is in the ring (claimable); zero when the epoch
    /// never settled or its root has left the ring.
    /// @param epoch a settled epoch
    function rewardsRootOf(uint64 epoch) external view returns (bytes32) {
        uint256 slot = epoch % ROOT_RING_SIZE;
        return _rootEpochs[slot] == epoch ? _boundRoots[slot] ^ bytes32(uint256(epoch)) : bytes32(0);
    }

    /// @notice Cumulative amount already paid to `account` (the largest cumulativeAmount it claimed).
    /// The sum of all claims paid is the sum of this over accounts, or of the Claimed events' amounts.
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @notice Fees not yet used to fund an epoch.
    function feePool() external view returns (uint256) {
        return _feePool;
    }

    /// @notice Sum of all settled epochs' reward totals.
    function totalReported() external view returns (uint256) {
        return _totalReported;
    }

    /// @notice Sum of all fees ever deposited.
    function totalFeesReceived() external view returns (uint256) {
        return _totalFeesReceived;
    }

    /// @notice The token claims are paid in.
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @notice The only contract allowed to settle epochs.
    function epochManager() external view returns (address) {
        return _epochManager;
    }
}
