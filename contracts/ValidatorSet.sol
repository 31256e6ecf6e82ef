// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

interface IFeeSink {
    function depositFees(uint256 amount) external;
}

/// @title ValidatorSet
/// @notice Validators bond at least `minBond` tokens to join the active set, which is capped at
/// `maxValidators` so every on-chain loop over it is bounded. Leaving starts an unbonding delay
/// during which the bond can still be slashed; then the bond can be withdrawn. The quorum for an
/// epoch report is ceil(2n/3) of the n active validators. The EpochManager slashes a validator on
/// proof of equivocation: the whole bond is taken, `slashRewardBps` of it to the prover, the rest
/// to the reward distributor's fee pool (back to honest participants).
contract ValidatorSet {
    using SafeERC20 for IERC20;

    enum ValidatorStatus {
        None,
        Active,
        Unbonding
    }

    struct Validator {
        ValidatorStatus status;
        uint64 unbondingEnds;
        uint256 bond;
    }

    error ValidatorBondTooLow(uint256 amount, uint256 minBond);
    error ValidatorAlreadyJoined(address validator);
    error ValidatorSetFull(uint256 maxValidators);
    error ValidatorNotActive(address validator);
    error ValidatorNotUnbonding(address validator);
    error ValidatorStillUnbonding(address validator, uint64 unbondingEnds);
    error ValidatorUnauthorizedSlasher(address caller);
    error ValidatorInvalidConfig();
    error ValidatorInvalidEndpoint(uint256 length);

    event ValidatorJoined(address indexed validator, uint256 bond);
    event ValidatorLeft(address indexed validator, uint64 unbondingEnds);
    event ValidatorWithdrew(address indexed validator, uint256 bond);
    event ValidatorSlashed(address indexed validator, address indexed prover, uint256 amount, uint256 proverReward);
    event ValidatorEndpointSet(address indexed validator, string url);

    /// @notice Longest endpoint URL, in bytes.
    uint256 public constant MAX_ENDPOINT_BYTES = 256;

    uint256 public constant MAX_VALIDATORS_LIMIT = 31;

    IERC20 private immutable _token;
    address private immutable _slasher;
    address private immutable _feeSink;
    uint256 private immutable _minBond;
    uint64 private immutable _unbondingDelay;
    uint256 private immutable _maxValidators;
    uint256 private immutable _slashRewardBps;

    mapping(address validator => Validator) private _validators;
    address[] private _active;
    mapping(address validator => uint256) private _activeIndexPlusOne;
    mapping(address validator => string) private _endpoints;

    /// @param token_ the staking token
    /// @param slasher_ the only contract that may slash (the EpochManager)
    /// @param feeSink_ receives slashed bonds as fees (the RewardDistributor)
    /// @param minBond_ minimum bond to join
    /// @param unbondingDelay_ seconds between leaving and withdrawing
    /// @param maxValidators_ cap on the active set (1..31)
    /// @param slashRewardBps_ share of a slashed bond paid to the prover, in basis points
    constructor(
        IERC20 token_,
        address slasher_,
        address feeSink_,
        uint256 minBond_,
        uint64 unbondingDelay_,
        uint256 maxValidators_,
        uint256 slashRewardBps_
    ) {
        if (maxValidators_ == 0 || maxValidators_ > MAX_VALIDATORS_LIMIT || slashRewardBps_ > 10_000 || minBond_ == 0) {
            revert ValidatorInvalidConfig();
        }
        _token = token_;
        _slasher = slasher_;
        _feeSink = feeSink_;
        _minBond = minBond_;
        _unbondingDelay = unbondingDelay_;
        _maxValidators = maxValidators_;
        _slashRewardBps = slashRewardBps_;
    }

    /// @notice Bonds `amount` tokens (approved beforehand) and joins the active set.
    function join(uint256 amount) external {
        if (amount < _minBond) revert ValidatorBondTooLow(amount, _minBond);
        if (_validators[msg.sender].status != ValidatorStatus.None) revert ValidatorAlreadyJoined(msg.sender);
        if (_active.length >= _maxValidators) revert ValidatorSetFull(_maxValidators);
        _token.safeTransferFrom(msg.sender, address(this), amount);
        _validators[msg.sender] = Validator({status: ValidatorStatus.Active, unbondingEnds: 0, bond: amount});
        _active.push(msg.sender);
        _activeIndexPlusOne[msg.sender] = _active.length;
        emit ValidatorJoined(msg.sender, amount);
    }

    /// @notice Advertises where the caller, an active validator, talks to its peers (batch sets,
    /// batches, reports), so validators find each other from the chain. Empty clears it.
    function setEndpoint(string calldata url) external {
        if (_validators[msg.sender].status != ValidatorStatus.Active) revert ValidatorNotActive(msg.sender);
        if (bytes(url).length > MAX_ENDPOINT_BYTES) revert ValidatorInvalidEndpoint(bytes(url).length);
        _endpoints[msg.sender] = url;
        emit ValidatorEndpointSet(msg.sender, url);
    }

    /// @notice The endpoint a validator advertised ('' when none).
    function endpointOf(address validator) external view returns (string memory) {
        return _endpoints[validator];
    }

    /// @notice Leaves the active set; the bond stays slashable until the unbonding delay ends.
    function leave() external {
        Validator storage v = _validators[msg.sender];
        if (v.status != ValidatorStatus.Active) revert ValidatorNotActive(msg.sender);
        _removeActive(msg.sender);
        v.status = ValidatorStatus.Unbonding;
        v.unbondingEnds = uint64(block.timestamp) + _unbondingDelay;
        emit ValidatorLeft(msg.sender, v.unbondingEnds);
    }

    /// @notice Withdraws the bond once unbonding has ended; the validator may then join again.
    function withdraw() external {
        Validator memory v = _validators[msg.sender];
        if (v.status != ValidatorStatus.Unbonding) revert ValidatorNotUnbonding(msg.sender);
        if (block.timestamp < v.unbondingEnds) revert ValidatorStillUnbonding(msg.sender, v.unbondingEnds);
        delete _validators[msg.sender];
        _token.safeTransfer(msg.sender, v.bond);
        emit ValidatorWithdrew(msg.sender, v.bond);
    }

    /// @notice Takes the whole bond of `validator` (active or unbonding). Only the EpochManager,
    /// on proof of equivocation. Returns the amount slashed (0 if nothing was bonded).
    function slash(address validator, address prover) external returns (uint256 amount) {
        if (msg.sender != _slasher) revert ValidatorUnauthorizedSlasher(msg.sender);
        Validator memory v = _validators[validator];
        if (v.status == ValidatorStatus.None) return 0;
        if (v.status == ValidatorStatus.Active) _removeActive(validator);
        delete _validators[validator];
        amount = v.bond;
        uint256 proverReward = (amount * _slashRewardBps) / 10_000;
        if (proverReward > 0) _token.safeTransfer(prover, proverReward);
        uint256 rest = amount - proverReward;
        if (rest > 0) {
            _token.forceApprove(_feeSink, rest);
            IFeeSink(_feeSink).depositFees(rest);
        }
        emit ValidatorSlashed(validator, prover, amount, proverReward);
    }

    /// @notice True when `validator` is in the active set.
    function isActive(address validator) external view returns (bool) {
        return _validators[validator].status == ValidatorStatus.Active;
    }

    /// @notice The record of `validator`.
    function getValidator(address validator) external view returns (Validator memory) {
        return _validators[validator];
    }

    /// @notice The active validators, in join order (at most `maxValidators`).
    function activeValidators() external view returns (address[] memory) {
        return _active;
    }

    /// @notice Number of active validators.
    function activeCount() external view returns (uint256) {
        return _active.length;
    }

    /// @notice Signatures an epoch report needs: ceil(2n/3) of the n active validators.
    function quorum() public view returns (uint256) {
        return (2 * _active.length + 2) / 3;
    }

    function minBond() external view returns (uint256) {
        return _minBond;
    }

    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    function maxValidators() external view returns (uint256) {
        return _maxValidators;
    }

    function token() external view returns (IERC20) {
        return _token;
    }

    function _removeActive(address validator) private {
        uint256 index = _activeIndexPlusOne[validator] - 1;
        uint256 last = _active.length - 1;
        if (index != last) {
            address moved = _active[last];
            _active[index] = moved;
            _activeIndexPlusOne[moved] = index + 1;
        }
        _active.pop();
        delete _activeIndexPlusOne[validator];
    }
}
