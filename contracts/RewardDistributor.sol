// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

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
/// proof against the latest root pays everything owed: cumulativeAmount minus what was claimed.
/// Anyone may submit a claim for an account; the tokens always go to the account.
contract RewardDistributor {
    using SafeERC20 for IERC20;

    error DistributorUnauthorized(address caller);
    error DistributorTotalExceedsFunds(uint64 epoch, uint256 total, uint256 available);
    error DistributorNoRoot();
    error DistributorInvalidProof(address account, uint256 cumulativeAmount);
    error DistributorNothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);

    event EpochFunded(uint64 indexed epoch, bytes32 rewardsRoot, uint256 minted, uint256 fromFees);
    event FeesDeposited(address indexed from, uint256 amount);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount, address indexed submitter);

    IERC20 private immutable _token;
    address private immutable _epochManager;

    bytes32 private _rewardsRoot;
    uint64 private _rootEpoch;
    uint256 private _feePool;
    uint256 private _totalReported;
    uint256 private _totalClaimed;
    uint256 private _totalFeesReceived;
    mapping(address account => uint256) private _claimed;

    /// @param token_ the DepinToken (this contract is its minter)
    /// @param epochManager_ the only contract allowed to settle epochs
    constructor(IERC20 token_, address epochManager_) {
        _token = token_;
        _epochManager = epochManager_;
    }

    /// @notice Funds `epoch` with `total` tokens and makes `rewardsRoot` the root claims prove against.
    /// Only the EpochManager, after it accepted the epoch's report.
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
        _totalReported += total;
        _rewardsRoot = root;
        _rootEpoch = epoch;
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

    /// @notice Pays `account` what it is owed under the latest rewards root.
    /// @param account the account the leaf names; receives the tokens whoever submits
    /// @param cumulativeAmount the account's total rewards over all settled epochs, as in the leaf
    /// @param proof the StandardMerkleTree proof of the leaf (account, cumulativeAmount)
    /// @return paid tokens transferred now: cumulativeAmount minus what was already claimed
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        returns (uint256 paid)
    {
        bytes32 root = _rewardsRoot;
        if (root == bytes32(0)) revert DistributorNoRoot();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert DistributorInvalidProof(account, cumulativeAmount);
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) revert DistributorNothingToClaim(account, cumulativeAmount, already);
        // cannot underflow: cumulativeAmount > already was checked just above
        unchecked {
            paid = cumulativeAmount - already;
        }
        _claimed[account] = cumulativeAmount;
        _totalClaimed += paid;
        _token.safeTransfer(account, paid);
        emit Claimed(account, paid, cumulativeAmount, msg.sender);
    }

    /// @notice The root claims are proven against (that of the latest settled epoch).
    function rewardsRoot() external view returns (bytes32) {
        return _rewardsRoot;
    }

    /// @notice The epoch whose report set the current root.
    function rootEpoch() external view returns (uint64) {
        return _rootEpoch;
    }

    /// @notice Cumulative amount already paid to `account`.
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

    /// @notice Sum of all claims paid.
    function totalClaimed() external view returns (uint256) {
        return _totalClaimed;
    }

    /// @notice Sum of all fees ever deposited.
    function totalFeesReceived() external view returns (uint256) {
        return _totalFeesReceived;
    }

    function token() external view returns (IERC20) {
        return _token;
    }

    function epochManager() external view returns (address) {
        return _epochManager;
    }
}
